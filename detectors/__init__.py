"""Built-in detectors, registered through the `genai_sre.detectors` entry-point group."""

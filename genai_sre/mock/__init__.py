"""A simulated OpenAI-compatible (and Anthropic Messages) LLM, driven by scenario files."""

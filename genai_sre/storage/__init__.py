"""SQLite storage in the data directory: schema migrations, redaction, the evidence store."""

"""Persistence: models, engine and sessions, migrations. Knows nothing of Telegram."""

"""Domain services: business logic on a SQLAlchemy session and plain values."""

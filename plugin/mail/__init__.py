"""Mail adapters: the composition of the outbox's mails, and their delivery over SMTP."""

"""Writing mail: what a person composes becomes a message, a draft or a reply."""

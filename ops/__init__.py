"""What operators need: health and readiness probes, metrics, logs, backups."""

"""analyze: logs and inventory -> connection records, egress prediction, classification, findings."""

"""Services of a project: init, a subject list from S3."""

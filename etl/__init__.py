"""ETL for GIS staff: read, validate, reproject, publish a dataset version."""

"""CNOP, the Cloud Native Order Processor."""

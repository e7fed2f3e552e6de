"""CNOP's domain core: plain values and rules with no database, no framework and no I/O.

Everything here is pure Python (Decimal arithmetic, enums, parsing) so that the services, the REST
adapters and the Reflex states all apply one definition of each rule, and so that the rules can be
unit-tested without a database. See docs/architecture.md for where each rule lives.
"""

"""Response models of the REST API: every route answers one of these, so /openapi.json documents it.

Models are built from the services' read models (`Model.of(view)` or `model_validate(view)`); the field
types in `common` fix the JSON rendering: money as 2-decimal strings, quantities and prices as exact
strings, datetimes as `isoformat()`, asset figures as JSON numbers.
"""

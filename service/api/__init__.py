"""The HTTP API (Flask): ``create_app`` in ``service.api.app``; one blueprint per resource."""

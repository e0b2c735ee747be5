"""The HTTP API: `create_app(settings)` (service.api.app) with one router per resource."""

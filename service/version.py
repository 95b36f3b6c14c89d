"""The engine version: part of every ETag and artifact; bump it whenever output bytes change."""

ENGINE_VERSION = "1.0.0"

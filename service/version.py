"""The engine version: part of every ETag and artifact; bump it whenever output bytes change."""

ENGINE_VERSION = "2.0.0"

"""Small pure helpers, one concern per file, shared by the apps: no models, no views."""

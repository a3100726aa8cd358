"""Settings: the accounts file and the environment, turned into typed settings."""

"""x. Imports nothing."""

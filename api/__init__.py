"""api: the FastAPI application. It only reads and commands through the other rooms' public functions."""

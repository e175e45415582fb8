"""Built-in LLM-judge scorers on any OpenAI-compatible chat-completions endpoint."""

"""Built-in backends. Each registers through the ``dagfetch.fetchers`` entry points like any
third-party plugin; the core never imports one by name except as the fsspec fallback."""

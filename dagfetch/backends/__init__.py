"""Built-in backends. Each registers through the ``dagfetch.fetchers`` entry points like any
third-party plugin, and names the extra it needs there; the core never imports one. The one
exception is the composition root, :mod:`dagfetch.defaults`, which hands the registry the
generic fsspec backend as the fallback for schemes no entry point claims."""

"""The public status pages: the read model (public.py), the cache (cache.py), rendering (render.py, feeds.py) and
the routes (app.py) of the keyless `status` function."""

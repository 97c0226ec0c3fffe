"""API tokens, stored as digests (django-rest-knox): a database leak leaks no live credential."""

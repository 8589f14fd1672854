"""The example generator, template and strategies, shipped inside the package so that
`pip install`/`pipx install` users get them: `dataworks examples copy DIR` writes them out.

The files are the same as the repository's `user_defined/` (a test keeps them identical).
"""

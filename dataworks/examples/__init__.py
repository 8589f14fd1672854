"""The example generator, template and strategies, shipped inside the package so that
`pip install`/`pipx install` users get them: `dataworks examples copy DIR` writes them out.

The repository's `user_defined/` files are symlinks to these.
"""

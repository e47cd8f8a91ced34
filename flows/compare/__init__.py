"""`fmnist-flow compare`: whether the difference between two revisions is real, from the test
predictions each already has (`result`), as text, Markdown, JSON or HTML (`render`)."""

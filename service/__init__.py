"""The container every service stack runs: a Flask app under Gunicorn."""

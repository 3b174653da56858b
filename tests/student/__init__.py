"""What a student touches: Validate, and JupyterLab in a browser."""

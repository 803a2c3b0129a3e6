"""Lambda handlers, one package per function: `functions.<name>.app.lambda_handler`."""

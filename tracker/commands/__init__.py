"""One module per ktrack subcommand: add_arguments(parser) and main(args, ctx) -> int."""

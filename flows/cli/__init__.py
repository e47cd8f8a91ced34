"""The `fmnist-flow` command (`main`): its arguments and each command's options (`args`), each
subcommand (`commands`), and the process supervision every command runs under (`supervision`)."""

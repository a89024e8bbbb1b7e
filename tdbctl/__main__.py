from tdbctl.cli import main

main()

from tdbctl.entry import main

main()

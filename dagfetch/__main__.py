from dagfetch.cli import main

main()

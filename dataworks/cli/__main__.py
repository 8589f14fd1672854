from dataworks.cli import main

main()

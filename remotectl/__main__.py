from remotectl.cli import main

main()

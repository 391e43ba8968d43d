from numsym_pl.cli import main

main()

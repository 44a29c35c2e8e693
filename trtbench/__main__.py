from trtbench.cli import main

main()

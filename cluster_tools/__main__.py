from cluster_tools.cli import main

main()

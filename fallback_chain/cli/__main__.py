from fallback_chain.cli import main

main()

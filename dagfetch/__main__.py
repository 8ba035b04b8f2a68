from dagfetch._console import run

run()

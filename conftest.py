pytest_plugins = ["pytester"]

# benchmarks/pairwise/ holds cyclic preferences, which a scalar reward model can never fully
# pass: `pytest benchmarks` runs the scalar suite; name the folder to run them
# (`pytest benchmarks/pairwise --rm-kind preference ...`): a path given explicitly is collected.
collect_ignore = ["benchmarks/pairwise"]

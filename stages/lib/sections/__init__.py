"""params.yaml's sections: one pydantic model per stage, in a module per stage, which the stage checks
its section with as it starts (`params.load`). Apart from the stages' code, which starts TensorFlow
(or SciPy and Matplotlib): what checks params before any stage runs (`fmnist-flow run --set`, a
sweep's search space, tools/schema.py) imports these alone. A module per stage, so that DVC reruns
only the stage whose model changed."""

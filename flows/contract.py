"""What a sweep and the flow runs of its trials say to each other through Prefect: names that both
sides read, kept here so that neither reaches into the other's modules for them."""

EXPERIMENT_FLOW = "fmnist-experiment"  # the flow that runs one trial (flows/trial)
DEFAULT_DEPLOYMENT = "fmnist-experiment"  # prefect.yaml's deployment of it, on a work pool
RESULT_KEY = "fmnist-experiment-result"  # the table artifact a trial's run writes its row to
EPOCH_EVENT = "fmnist.training.epoch"  # a training epoch's validation accuracy, an event of the trial's run

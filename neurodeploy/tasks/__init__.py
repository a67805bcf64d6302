"""Literature learning tasks run on the reference and on the deployment, judged in the task's own metric."""

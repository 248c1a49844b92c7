"""Training: data, the simulator, the model pipeline, evaluation, registration and the gate."""

"""The datasets' files (MNIST's npz and IDX, CIFAR-10's python tar), decoded safely and checked, and the arrays
the networks read, made from them once (`arrays`). It may import `denselab.core`."""

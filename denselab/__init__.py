"""DenseLab's library: what the pipeline's stages share (params, file formats, the model, the training loop,
the statistics, the report's observations). The stages in `stages/` are entry points that call into it."""

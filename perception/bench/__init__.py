"""Speed, memory and reliability measurements of the whole pipeline (`perception bench`, `perception bench soak`).

- `frames`: frame sets made once before timing (synthetic renders, the EuRoC bag), cycled with fresh headers;
- `measure`: timing loops, latency statistics, process memory;
- `int8`: Q/DQ INT8 versions of the pipeline's networks, made on the fly;
- `pipeline`: the full-pipeline benchmark (sizes, stages, baseline, int8, real frames);
- `soak`: many frames through the offline replay path, memory and latency curves;
- `plot`: the soak curves as a PNG, drawn with OpenCV.

Nothing here is ROS; the command line is in `perception.cli.bench*`. See docs/performance.md.
"""

-- gantry store, version 3: what the GPU went through while a benchmark ran (SM clock, power,
-- temperature, throttle reasons), as JSON; NULL where nothing sampled it (the CPU backend, no NVML).

ALTER TABLE bench_results ADD COLUMN conditions TEXT;

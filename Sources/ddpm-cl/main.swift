import DDPMOpenCL
let d = try CLDevices.all()
for x in d { print(x.name, x.kind, x.version, x.computeUnits) }

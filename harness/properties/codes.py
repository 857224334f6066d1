"""Real codes the generators use: SNOMED CT concepts and dm+d products (all Verhoeff-valid).

Shared by the Hypothesis strategies and the reference supplier's generator.
"""

from __future__ import annotations

SCT = "http://snomed.info/sct"
DMD = "https://dmd.nhs.uk"
VERIFICATION_EXT = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
RELATIONSHIP_CS = "https://fhir.hl7.org.uk/CodeSystem/UKCore-AdditionalPersonRelationshipRole"
ORG_TYPE_CS = "http://terminology.hl7.org/CodeSystem/organization-type"

MEDICINES = [("39732311000001104", "Amoxicillin 250mg capsules"),
             ("11278411000001109", "Influenza vaccine (split virion, inactivated) suspension for injection")]
ALLERGIES = [("372687004", "Amoxicillin"), ("91936005", "Allergy to penicillin"),
             ("409137002", "No known drug allergy")]
OBSERVATIONS = [("364075005", "Heart rate", "/min", 60, 100), ("27113001", "Body weight", "kg", 45, 95),
                ("386725007", "Body temperature", "Cel", 36, 38)]
CARE_PLAN = ("734163000", "Care plan")
DECLINED = ("182895007", "Drug declined by patient")
